"""XML Schema of the DA/T 48-2009 electronic-file encapsulation package (EEP), as we transcribed it.

Transcribed from the element structure in standards.md §3 (DA/T 48-2009 §3.1-3.2): element names,
order, cardinality and the enumerated values. It covers the original package (原始型) with its
signature block; the modification layer (修改封装内容) and the lock signature (锁定签名) are accepted
as any content, since this system neither writes nor checks them yet. Kept in a Python module so it
ships with the package.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

NAMESPACE = "http://www.saac.gov.cn/standards/ERM/encapsulation"

XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{NAMESPACE}" targetNamespace="{NAMESPACE}"
           elementFormDefault="qualified">
  <xs:simpleType name="文本"><xs:restriction base="xs:string"/></xs:simpleType>
  <xs:simpleType name="非空文本">
    <xs:restriction base="xs:string"><xs:minLength value="1"/></xs:restriction>
  </xs:simpleType>

  <xs:element name="电子文件封装包">
    <xs:complexType><xs:sequence>
      <xs:element name="封装包格式描述" type="非空文本"/>
      <xs:element name="版本" type="xs:gYear" fixed="2009"/>
      <xs:element ref="被签名对象"/>
      <xs:element ref="电子签名块" minOccurs="0"/>
      <xs:element name="锁定签名" minOccurs="0">
        <xs:complexType><xs:sequence><xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="被签名对象">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="封装包类型">
          <xs:simpleType><xs:restriction base="xs:string">
            <xs:enumeration value="原始型"/><xs:enumeration value="修改型"/>
          </xs:restriction></xs:simpleType>
        </xs:element>
        <xs:element name="封装包类型描述" type="非空文本"/>
        <xs:element name="封装包创建时间" type="xs:dateTime"/>
        <xs:element name="封装包创建单位" type="非空文本"/>
        <xs:choice>
          <xs:element ref="封装内容"/>
          <xs:element name="修改封装内容">
            <xs:complexType><xs:sequence><xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:choice>
      </xs:sequence>
      <xs:attribute name="eep版本" type="xs:gYear" use="required" fixed="2009"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="封装内容">
    <xs:complexType><xs:sequence>
      <xs:element ref="文件实体块"/>
      <xs:element ref="业务实体块"/>
      <xs:element ref="机构人员实体块"/>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="文件实体块">
    <xs:complexType><xs:sequence>
      <xs:element ref="文件实体"/>
      <xs:element name="文件实体关系" minOccurs="0" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="文件标识符" type="非空文本"/>
          <xs:element name="被关联文件标识符" type="非空文本"/>
          <xs:element name="关系类型" type="文本" minOccurs="0"/>
          <xs:element name="关系" type="文本" minOccurs="0"/>
          <xs:element name="关系描述" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="文件实体">
    <xs:complexType><xs:sequence>
      <xs:element name="聚合层次" type="xs:string" fixed="文件"/>
      <xs:element name="来源">
        <xs:complexType><xs:sequence>
          <xs:element name="档案馆名称" type="文本" minOccurs="0"/>
          <xs:element name="档案馆代码" type="文本" minOccurs="0"/>
          <xs:element name="全宗名称" type="文本" minOccurs="0"/>
          <xs:element name="立档单位名称" type="非空文本"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="电子文件号" type="非空文本"/>
      <xs:element name="档号">
        <xs:complexType mixed="true"><xs:sequence>
          <xs:element name="全宗号" type="文本" minOccurs="0"/>
          <xs:element name="目录号" type="文本" minOccurs="0"/>
          <xs:element name="年度" type="xs:gYear"/>
          <xs:element name="保管期限" type="非空文本"/>
          <xs:element name="机构或问题" type="文本" minOccurs="0"/>
          <xs:element name="室编案卷号" type="文本" minOccurs="0"/>
          <xs:element name="馆编案卷号" type="文本" minOccurs="0"/>
          <xs:choice>
            <xs:sequence>
              <xs:element name="室编件号" type="xs:positiveInteger"/>
              <xs:element name="馆编件号" type="xs:positiveInteger" minOccurs="0"/>
            </xs:sequence>
            <xs:element name="馆编件号" type="xs:positiveInteger"/>
          </xs:choice>
          <xs:element name="页号" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="内容描述">
        <xs:complexType><xs:sequence>
          <xs:element name="题名" type="非空文本"/>
          <xs:element name="并列题名" type="文本" minOccurs="0"/>
          <xs:element name="副题名" type="文本" minOccurs="0"/>
          <xs:element name="说明题名文字" type="文本" minOccurs="0"/>
          <xs:element name="主题词" minOccurs="0" maxOccurs="unbounded">
            <xs:complexType><xs:simpleContent><xs:extension base="xs:string">
              <xs:attribute name="主题词表名称" type="xs:string"/>
            </xs:extension></xs:simpleContent></xs:complexType>
          </xs:element>
          <xs:element name="关键词" type="文本" minOccurs="0"/>
          <xs:element name="人名" type="文本" minOccurs="0"/>
          <xs:element name="摘要" type="文本" minOccurs="0"/>
          <xs:element name="分类号" type="文本" minOccurs="0"/>
          <xs:element name="文件编号" type="文本" minOccurs="0"/>
          <xs:element name="责任者" type="非空文本"/>
          <xs:element name="日期" type="xs:date"/>
          <xs:element name="文种" type="文本" minOccurs="0"/>
          <xs:element name="紧急程度" type="文本" minOccurs="0"/>
          <xs:element name="主送" type="文本" minOccurs="0"/>
          <xs:element name="抄送" type="文本" minOccurs="0"/>
          <xs:element name="密级" type="非空文本"/>
          <xs:element name="保密期限" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="形式特征">
        <xs:complexType><xs:sequence>
          <xs:element name="文件组合类型">
            <xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="单件"/><xs:enumeration value="组合文件"/>
            </xs:restriction></xs:simpleType>
          </xs:element>
          <xs:element name="页数" type="xs:nonNegativeInteger" minOccurs="0"/>
          <xs:element name="语种" type="文本" minOccurs="0" default="汉语"/>
          <xs:element name="稿本" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="存储位置">
        <xs:complexType><xs:sequence>
          <xs:element name="当前位置" type="文本" minOccurs="0"/>
          <xs:element name="脱机载体编号" type="非空文本" maxOccurs="unbounded"/>
          <xs:element name="脱机载体存址" type="文本" minOccurs="0" maxOccurs="unbounded"/>
          <xs:element name="缩微号" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="权限管理">
        <xs:complexType><xs:sequence>
          <xs:element name="知识产权说明" type="文本" minOccurs="0"/>
          <xs:element name="授权" minOccurs="0" maxOccurs="unbounded">
            <xs:complexType><xs:sequence>
              <xs:element name="授权对象" type="非空文本"/>
              <xs:element name="授权行为" type="非空文本"/>
            </xs:sequence></xs:complexType>
          </xs:element>
          <xs:element name="控制标识" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="信息系统描述" type="文本" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element name="附注" type="文本" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element ref="文件数据"/>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="文件数据">
    <xs:complexType><xs:sequence>
      <xs:element name="文档" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="文档标识符" type="xs:ID"/>
          <xs:element name="文档序号" type="文本" minOccurs="0"/>
          <xs:element name="文档主从声明" minOccurs="0">
            <xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="主文档"/><xs:enumeration value="附属文档"/>
            </xs:restriction></xs:simpleType>
          </xs:element>
          <xs:element name="题名" type="文本" minOccurs="0"/>
          <xs:element name="文档数据" maxOccurs="unbounded">
            <xs:complexType>
              <xs:sequence><xs:element ref="编码" maxOccurs="unbounded"/></xs:sequence>
              <xs:attribute name="文档数据ID" type="xs:ID" use="required"/>
            </xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="编码">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="电子属性">
          <xs:complexType><xs:sequence>
            <xs:element name="格式信息" type="文本" minOccurs="0"/>
            <xs:element name="计算机文件名" type="非空文本"/>
            <xs:element name="计算机文件大小" type="xs:nonNegativeInteger"/>
            <xs:element name="文档创建程序" type="文本" minOccurs="0"/>
          </xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="数字化属性" minOccurs="0">
          <xs:complexType><xs:sequence>
            <xs:element name="数字化对象形态" type="文本" minOccurs="0"/>
            <xs:element name="扫描分辨率" type="非空文本"/>
            <xs:element name="扫描色彩模式">
              <xs:simpleType><xs:restriction base="xs:string">
                <xs:enumeration value="黑白二值"/><xs:enumeration value="灰度"/><xs:enumeration value="彩色"/>
              </xs:restriction></xs:simpleType>
            </xs:element>
            <xs:element name="图像压缩方案" type="文本" minOccurs="0"/>
          </xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="编码描述" type="非空文本"/>
        <xs:element name="反编码关键字" type="非空文本"/>
        <xs:element name="编码数据">
          <xs:complexType><xs:simpleContent><xs:extension base="xs:base64Binary">
            <xs:attribute name="编码数据ID" type="xs:ID" use="required"/>
            <xs:attribute name="引用编码数据ID" type="xs:IDREF"/>
          </xs:extension></xs:simpleContent></xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="编码ID" type="xs:ID" use="required"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="业务实体块">
    <xs:complexType><xs:sequence>
      <xs:element name="业务实体" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="业务标识符" type="非空文本"/>
          <xs:element name="机构人员标识符" type="非空文本"/>
          <xs:element name="文件标识符" type="非空文本"/>
          <xs:element name="业务状态">
            <xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="历史行为"/><xs:enumeration value="计划任务"/>
            </xs:restriction></xs:simpleType>
          </xs:element>
          <xs:element name="业务行为" type="非空文本"/>
          <xs:element name="行为时间" type="xs:dateTime"/>
          <xs:element name="行为依据" type="文本" minOccurs="0"/>
          <xs:element name="行为描述" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="机构人员实体块">
    <xs:complexType><xs:sequence>
      <xs:element name="机构人员实体" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="机构人员标识符" type="非空文本"/>
          <xs:element name="机构人员类型" minOccurs="0">
            <xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="单位"/><xs:enumeration value="内设机构"/><xs:enumeration value="个人"/>
            </xs:restriction></xs:simpleType>
          </xs:element>
          <xs:element name="机构人员名称" type="非空文本"/>
          <xs:element name="组织机构代码" type="文本" minOccurs="0"/>
          <xs:element name="个人职位" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="机构人员实体关系" minOccurs="0" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="机构人员标识符" type="非空文本"/>
          <xs:element name="被关联机构人员标识符" type="非空文本"/>
          <xs:element name="关系类型" type="文本" minOccurs="0"/>
          <xs:element name="关系" type="文本" minOccurs="0"/>
          <xs:element name="关系描述" type="文本" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>

  <xs:element name="电子签名块">
    <xs:complexType><xs:sequence>
      <xs:element name="电子签名" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="签名标识符" type="xs:ID"/>
          <xs:element name="签名规则" type="非空文本"/>
          <xs:element name="签名时间" type="xs:dateTime" minOccurs="0"/>
          <xs:element name="签名人" type="文本" minOccurs="0"/>
          <xs:element name="签名结果" type="xs:base64Binary"/>
          <xs:element name="证书块" maxOccurs="unbounded">
            <xs:complexType><xs:sequence>
              <xs:element name="证书" type="xs:base64Binary" maxOccurs="unbounded"/>
              <xs:element name="证书引证" type="xs:anyURI" minOccurs="0"/>
            </xs:sequence></xs:complexType>
          </xs:element>
          <xs:element name="签名算法标识" type="非空文本"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(XSD.encode("utf-8")))
